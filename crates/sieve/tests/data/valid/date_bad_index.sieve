require ["date","index"];
if date :index 2 :last "date" "year" "2020" {keep;}
