from siliconbench.bench.cli import main

main()
