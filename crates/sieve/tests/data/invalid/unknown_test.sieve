if headr :is "subject" "x" { keep; }
