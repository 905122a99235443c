if header :index 1 :is "x" "1" { keep; }
