"""What both deployables share: the plan, ids, the wire bindings, TLS options and the error base.

The agent and the collector import this package and never each other (tests/test_layering.py).
"""
