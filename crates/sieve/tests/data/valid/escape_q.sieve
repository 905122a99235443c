if header :is "subject" "\q" {keep;}
