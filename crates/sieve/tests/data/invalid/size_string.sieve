if size :over "1K" {keep;}
