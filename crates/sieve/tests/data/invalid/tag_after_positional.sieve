if header "subject" :is "x" {keep;}
