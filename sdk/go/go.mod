module github.com/mantlehq/mantle/sdk/go

go 1.24
