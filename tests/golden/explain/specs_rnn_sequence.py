gradcheck: specs/rnn_sequence.yaml: cannot emit python: layer 1 (recurrent, Wh, Wx, + b, 3 steps, tanh) is a recurrent layer: no closed form in the expression language
