from siliconbench.collector.cli import main

main()
