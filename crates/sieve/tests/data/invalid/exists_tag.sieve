if exists :is "x" {keep;}
