if header :is "subject" 4 {keep;}
