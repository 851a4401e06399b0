from siliconbench.agent.cli import main

main()
