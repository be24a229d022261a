"""Do two single-thread processes on this machine each run as fast as one alone? (issue 8: a check that the
cores are real cores and that two trials do not slow each other, before reading the throughput benchmark.)

    python benchmarks/core_contention.py

Prints the seconds of a matmul loop and of a small conv-net training loop, one process alone and two side by side.
"""
import time, torch, multiprocessing as mp
def work(kind, q):
    torch.set_num_threads(1)
    if kind == "matmul":
        a = torch.randn(256, 256); t = time.perf_counter()
        for _ in range(3000): a @ a
    else:  # a small conv net training step loop on 8x8 digits-sized input
        m = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
                                torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32*64, 10))
        opt = torch.optim.SGD(m.parameters(), 0.01); x = torch.randn(64, 1, 8, 8); y = torch.randint(0, 10, (64,))
        t = time.perf_counter()
        for _ in range(600):
            opt.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
    q.put(time.perf_counter() - t)
if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    for kind in ("matmul", "convnet"):
        for n in (1, 2):
            q = ctx.Queue(); ps = [ctx.Process(target=work, args=(kind, q)) for _ in range(n)]
            [p.start() for p in ps]; ts = [q.get() for _ in ps]; [p.join() for p in ps]
            print(kind, n, "procs: seconds each", [round(t, 2) for t in ts])
    print(open("/proc/loadavg").read())
