keep true;
