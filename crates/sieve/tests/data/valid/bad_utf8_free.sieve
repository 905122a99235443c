if header :is "subject" "café" {keep;}
