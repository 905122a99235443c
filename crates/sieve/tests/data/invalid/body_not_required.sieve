if body :contains "x" { keep; }
