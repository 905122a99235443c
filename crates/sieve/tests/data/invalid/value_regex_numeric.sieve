require ["regex","comparator-i;ascii-numeric"];
if header :regex :comparator "i;ascii-numeric" "x" "1" {keep;}
