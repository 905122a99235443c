if header :comparator "i;bogus" "subject" "x" {keep;}
