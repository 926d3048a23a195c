package eval_test

import (
	"fmt"

	"github.com/bitrun/bitrun/eval"
)

func ExampleTopK() {
	scores := []float32{0.1, 2.5, -1, 2.5, 0.7}
	fmt.Println(eval.TopK(scores, 3))
	// Output: [1 3 4]
}

func ExampleMetrics() {
	m := eval.NewMetrics(2) // top-1 and top-2
	logits := []float32{
		3, 1, 0, // true class 0: right
		2, 1, 0, // true class 1: second best
		0, 1, 2, // true class 0: last
	}
	if err := m.Add(logits, 3, []int{0, 1, 0}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("top-1 %.3f top-2 %.3f\n", m.Top1(), m.TopK())
	fmt.Println(m.Confusion())
	// Output:
	// top-1 0.333 top-2 0.667
	// [[1 0 1] [1 0 0] [0 0 0]]
}

func ExampleResolvePreprocess() {
	// A bitrun export: dynamic N, H, W; preprocessing in the metadata.
	md := map[string]string{
		eval.MetaResolution: "128",
		eval.MetaMean:       "0.5,0.5,0.5",
		eval.MetaStd:        "0.5,0.5,0.5",
	}
	p, err := eval.ResolvePreprocess([]int64{-1, 3, -1, -1}, md, eval.Overrides{})
	fmt.Println(p.Size, p.Channels, p.Mean, err)

	// A model without metadata needs the normalisation from the user.
	_, err = eval.ResolvePreprocess([]int64{1, 3, 224, 224}, nil, eval.Overrides{})
	fmt.Println(err != nil)
	// Output:
	// 128 3 [0.5 0.5 0.5] <nil>
	// true
}
