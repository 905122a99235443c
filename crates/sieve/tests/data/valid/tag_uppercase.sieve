if header :IS "subject" "x" {keep;}
