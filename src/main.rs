fn main() {
    println!("pbxbridge");
}
