gradcheck: specs/rnn_many_to_one.yaml: cannot emit python: layer 1 (recurrent, Wh, Wx, + b, 4 steps, tanh) is a recurrent layer: no closed form in the expression language
