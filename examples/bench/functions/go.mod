module bench/functions

go 1.24

require github.com/mantlehq/mantle/sdk/go v0.0.0

replace github.com/mantlehq/mantle/sdk/go => ../../../sdk/go
