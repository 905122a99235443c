if anyof() {keep;}
