if size 10 {keep;}
