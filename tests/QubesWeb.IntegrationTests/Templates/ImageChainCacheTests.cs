// What qemu-img said of an unchanged image is kept (each run costs ~10 ms, and a creation reads the same chain three
// times): a kept answer must never outlive a change of the file, whatever the change and even with its times set back.
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.IntegrationTests.TemplateTests;

public sealed class ImageChainCacheTests : IDisposable
{
    private readonly string _pool = Directory.CreateTempSubdirectory("qubesweb-chain-cache-").FullName;

    public void Dispose() => Directory.Delete(_pool, recursive: true);

    [Fact]
    public async Task A_layer_rewritten_in_place_to_leave_the_pool_is_refused_even_with_its_modification_time_set_back()
    {
        var (top, bottom) = await ChainAsync();
        Assert.Equal(bottom, (await ImageChain.ReadAsync(top, _pool))[0].BackingFile);
        var written = File.GetLastWriteTimeUtc(top);

        // The same length, the same inode, the old modification time: only the header's backing name changed.
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath, ["rebase", "-u", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", "--", top]);
        File.SetLastWriteTimeUtc(top, written);

        var refused = await Assert.ThrowsAsync<UnsafeImageException>(() => ImageChain.ReadAsync(top, _pool));
        Assert.Contains("its backing file '/etc/shadow' is outside the console's pool", refused.Message);
    }

    [Fact]
    public async Task A_layer_renamed_over_another_and_data_written_below_the_top_are_read_anew()
    {
        var (top, bottom) = await ChainAsync();
        var before = await ImageChain.MeasureAsync(top, _pool);
        Assert.Equal(before, await ImageChain.MeasureAsync(top, _pool));

        // Another file renamed over the bottom layer, as a detach swaps in its flattened copy: it has no backing file.
        var flat = Path.Combine(_pool, "flat.qcow2");
        await QemuImg.ConvertAsync(bottom, flat);
        File.Move(flat, bottom, overwrite: true);
        Assert.Null((await ImageChain.ReadAsync(bottom, _pool))[0].BackingFile);
        Assert.Equal(2, (await ImageChain.ReadAsync(top, _pool)).Count);

        await QemuImg.WritePatternAsync(bottom, 0x5a, 0, 8 << 20);
        var grown = await ImageChain.MeasureAsync(top, _pool);
        Assert.True(grown >= before + (8 << 20), $"the measure stayed at {grown} after 8 MiB were written below the top (was {before})");
    }

    /// <summary>top -> bottom -> base, all settled (their stamps old enough to be kept), so the reads below are kept ones.</summary>
    private async Task<(string Top, string Bottom)> ChainAsync()
    {
        var (baseImage, bottom, top) = (Path.Combine(_pool, "base.qcow2"), Path.Combine(_pool, "bottom.qcow2"), Path.Combine(_pool, "top.qcow2"));
        await QemuImg.CreateAsync(baseImage, 64 << 20);
        await QemuImg.WritePatternAsync(baseImage, 0x11, 16 << 20, 4 << 20);
        await QemuImg.CreateAsync(bottom, 0, baseImage);
        await QemuImg.CreateAsync(top, 0, bottom);
        await Eventually.UntilAsync(() => new[] { baseImage, bottom, top }.All(p => FileStamp.Of(p) is { Settled: true }),
            "the chain's files to settle (unchanged long enough to be kept)");
        Assert.Equal(3, (await ImageChain.ReadAsync(top, _pool)).Count);
        return (top, bottom);
    }
}
