module github.com/edgehost/edgehost/abi

go 1.23
