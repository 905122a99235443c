if not (true) {keep;}
