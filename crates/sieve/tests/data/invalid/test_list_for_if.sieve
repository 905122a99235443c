if (true, false) {keep;}
