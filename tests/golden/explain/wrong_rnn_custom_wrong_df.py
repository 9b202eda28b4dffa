gradcheck: tests/fixtures/wrong/rnn_custom_wrong_df.yaml: cannot emit python: layer 1 (recurrent, Wh, I2, 3 steps, custom) is a recurrent layer: no closed form in the expression language
