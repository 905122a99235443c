if allof(true) {keep;}
