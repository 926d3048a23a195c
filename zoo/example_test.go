package zoo_test

import (
	"fmt"

	"github.com/bitrun/bitrun/zoo"
)

func ExampleCatalog_Lookup() {
	e, err := zoo.Default().Lookup("bit-m-r50x1")
	if err != nil {
		panic(err)
	}
	fmt.Println(e.Name, e.Arch, e.Classes, e.Resolution)
	fmt.Println(e.URLFor(""))
	fmt.Println(e.URLFor("https://mirror.example/bit/"))

	_, err = zoo.Default().Lookup("BiT-M-R50x2")
	fmt.Println(err)
	// Output:
	// BiT-M-R50x1 R50x1 21843 224
	// https://storage.googleapis.com/bit_models/BiT-M-R50x1.npz
	// https://mirror.example/bit/BiT-M-R50x1.npz
	// zoo: unknown model "BiT-M-R50x2" (did you mean BiT-M-R50x1, BiT-M-R50x3, BiT-S-R50x1?)
}

func ExampleParseName() {
	ref, err := zoo.ParseName("BiT-S-R101x1@sha256:" + "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809")
	fmt.Println(ref.Name, ref.Digest[:8], err)
	_, err = zoo.ParseName("../../etc/passwd")
	fmt.Println(err)
	// Output:
	// BiT-S-R101x1 3f1b2c4d <nil>
	// zoo: malformed model name: "../../etc/passwd": empty, '.' or '..' path segment
}
