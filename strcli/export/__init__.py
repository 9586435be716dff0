"""Motion for other tools: `strcli export` (glTF 2.0 binary with skinned SMPL bodies, BVH per
track) from what `strcli reconstruct` wrote. One module per format (`gltf`, `bvh`); the shared
conventions (axes, rest skeleton) in `motion`; what the formats approximate in `accuracy`; one
output folder's export, written safely, in `writer`."""
