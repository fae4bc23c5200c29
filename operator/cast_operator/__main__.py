from cast_operator.main import main

main()
