require ["regex","relational"];
if header :regex :count "eq" "x" "1" {keep;}
