from stac_mmtp.commands.main import main

main()
