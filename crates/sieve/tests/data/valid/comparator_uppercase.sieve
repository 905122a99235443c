if header :comparator "I;OCTET" "subject" "x" {keep;}
