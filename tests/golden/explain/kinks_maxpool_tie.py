gradcheck: tests/fixtures/kinks/maxpool_tie.yaml: cannot emit python: layer 1 (maxpool, 2×2, identity) is a maxpool layer: no closed form in the expression language
