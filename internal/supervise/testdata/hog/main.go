// Command hog allocates memory until it fails: the child of
// TestAddressSpaceLimitExplained, built without the race detector, whose
// shadow memory no useful address-space limit leaves room for.
package main

var sink [][]byte

func main() {
	for {
		b := make([]byte, 16<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		sink = append(sink, b)
	}
}
