if size :over 1 :under 2 {keep;}
