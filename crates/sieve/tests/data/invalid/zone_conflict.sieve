require "date";
if date :originalzone :zone "+0100" "date" "year" "2020" {keep;}
