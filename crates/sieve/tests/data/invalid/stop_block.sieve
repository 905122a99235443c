stop {keep;}
