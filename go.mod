module github.com/edgehost/edgehost

go 1.26

require github.com/edgehost/edgehost/abi v0.0.0

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/tetratelabs/wazero v1.12.0 // indirect
	golang.org/x/sys v0.44.0 // indirect
)

replace github.com/edgehost/edgehost/abi => ./abi
