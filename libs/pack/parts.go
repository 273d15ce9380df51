package pack

import "github.com/pulpdist/pulpdist/libs/tree"

// Parts lists the content the target needs that the base lacks: each file
// hash of to that no file of from has, once, in path order. A nil base
// means the empty tree. This is the part selection every pack writer uses
// (the delta-cache and `pulpdist pack`), so that the same two versions
// always give the same pack.
func Parts(from, to *tree.Manifest) []Part {
	have := map[string]bool{}
	if from != nil {
		for _, e := range from.Entries {
			if e.Kind == tree.KindFile {
				have[e.Hash] = true
			}
		}
	}
	var parts []Part
	for _, e := range to.Entries {
		if e.Kind != tree.KindFile || have[e.Hash] {
			continue
		}
		have[e.Hash] = true
		parts = append(parts, Part{Hash: e.Hash, Size: e.Size})
	}
	return parts
}
