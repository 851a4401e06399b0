"""`siliconbench`: one command for one node, composed of the agent and the collector (the one package
that imports both; they never import each other)."""
