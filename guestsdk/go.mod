module github.com/edgehost/edgehost/guestsdk

go 1.23

require github.com/edgehost/edgehost/abi v0.0.0

replace github.com/edgehost/edgehost/abi => ../abi
