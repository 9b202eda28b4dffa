gradcheck: specs/tiny_cnn.yaml: cannot emit python: layer 1 (conv, K, + c, relu) is a conv layer: no closed form in the expression language
