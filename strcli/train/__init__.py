"""Training and evaluating STR the paper's way (TCMR's recipe and protocol).

Modules, in the order the data flows: `data` (the TCMR/VIBE pre-processed files, read
safely and lazily, cut into 16-frame windows), `joints` (the 49-joint training set and the
evaluation joint sets from our SMPL body), `loss` (section 2.5), `trainer` (section 3.1),
`metrics` (section 3.2) and `evaluate` (Table 1 and Table 2). docs/training.md explains
every choice.
"""
