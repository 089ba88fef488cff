module github.com/edgehost/edgehost/testdata/guests

go 1.23

require (
	github.com/edgehost/edgehost/abi v0.0.0
	github.com/edgehost/edgehost/guestsdk v0.0.0
)

replace (
	github.com/edgehost/edgehost/abi => ../../abi
	github.com/edgehost/edgehost/guestsdk => ../../guestsdk
)
