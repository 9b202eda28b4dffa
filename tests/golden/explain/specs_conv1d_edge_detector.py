gradcheck: specs/conv1d_edge_detector.yaml: cannot emit python: layer 1 (conv, k, + b, identity) is a conv layer: no closed form in the expression language
