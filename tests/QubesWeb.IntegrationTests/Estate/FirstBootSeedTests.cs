// The first-boot configuration on the embedded demo: a cloud-init NoCloud seed written by genisoimage before each
// start of a qube whose OS family runs cloud-init, attached read-only as vdd, whose files say the qube's hostname,
// Qubes' volume layout, the guest agent and the configured key; none for other families.
using System.Text.Json.Nodes;
using System.Xml.Linq;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;

namespace QubesWeb.IntegrationTests.Estate;

public sealed class FirstBootSeedTests
{
    private static async Task<string> IsoFileAsync(string iso, string file) =>
        (await ProcessRunner.RunCheckedAsync("isoinfo", ["-J", "-i", iso, "-x", "/" + file])).StandardOutput;

    [Fact]
    public async Task A_qube_of_a_cloud_init_family_gets_a_cidata_seed_written_at_start_with_its_hostname_layout_agent_and_key()
    {
        const string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIQubesWebTestKey test@dom0";
        await using var host = await ConsoleHost.StartAsync(extraArgs: [$"--FirstBoot:SshAuthorizedKey={key}"]);
        var seed = Path.Combine(host.PoolDir, "vault", FirstBootSeed.FileName);
        var disk = XDocument.Parse(host.Get<IHypervisor>().GetXml("vault")).Root!.Element("devices")!.Elements("disk")
            .Single(d => d.Element("target")!.Attribute("dev")!.Value == "vdd");
        Assert.Equal(seed, disk.Element("source")!.Attribute("file")!.Value);
        Assert.NotNull(disk.Element("readonly"));
        Assert.Equal("raw", disk.Element("driver")!.Attribute("type")!.Value);

        var start = await SucceedsAsync(host, JobKind.Start, "vault");

        Assert.Contains(start.Log, l => l.Text == "First-boot configuration (cloud-init) written for vault.");
        Assert.Contains("Volume id: cidata", (await ProcessRunner.RunCheckedAsync("isoinfo", ["-d", "-i", seed])).StandardOutput);
        var meta = JsonNode.Parse(await IsoFileAsync(seed, "meta-data"))!;
        Assert.Equal("vault", (string?)meta["local-hostname"]);
        var userData = await IsoFileAsync(seed, "user-data");
        Assert.StartsWith("#cloud-config\n", userData);
        var config = JsonNode.Parse(userData["#cloud-config\n".Length..])!;
        Assert.Equal("vault", (string?)config["hostname"]);
        var user = config["users"]![0]!;
        Assert.Equal(("user", key, true), ((string?)user["name"], (string?)user["ssh_authorized_keys"]![0], (bool?)user["lock_passwd"]));
        Assert.Equal(["LABEL=private", "/rw", "ext4"], config["mounts"]![0]!.AsArray().Take(3).Select(n => (string?)n));
        Assert.Equal(["/rw/home", "/home", "none"], config["mounts"]![1]!.AsArray().Take(3).Select(n => (string?)n));
        Assert.Equal("/dev/vdb", (string?)config["fs_setup"]![0]!["device"]);
        Assert.False((bool?)config["fs_setup"]![0]!["overwrite"]);
        Assert.Contains("qemu-guest-agent", config["packages"]!.AsArray().Select(n => (string?)n));
        Assert.Contains(config["runcmd"]!.AsArray(), c => c!.ToJsonString() == """["systemctl","enable","--now","qemu-guest-agent"]""");
        Assert.Equal(2, (int?)JsonNode.Parse(await IsoFileAsync(seed, "network-config"))!["version"]);

        // The same settings, the same instance: cloud-init does not redo per-instance work on a kept root.
        var id = (string?)meta["instance-id"];
        await SucceedsAsync(host, JobKind.Shutdown, "vault");
        await SucceedsAsync(host, JobKind.Start, "vault");
        Assert.Equal(id, (string?)JsonNode.Parse(await IsoFileAsync(seed, "meta-data"))!["instance-id"]);
    }

    [Fact]
    public async Task A_new_key_is_a_new_instance_and_a_qube_of_another_family_gets_no_seed()
    {
        await using (var first = await ConsoleHost.StartAsync(extraArgs: ["--FirstBoot:PasswordHash=$6$salt$hash"]))
        {
            var seeds = first.Get<FirstBootSeeds>();
            // An empty standalone has no os-distribution: no seed, no vdd.
            await SucceedsAsync(first, JobKind.Clone, "plain", new Services.Qubes.CloneRequest(Data.Qubes.QubeClass.StandaloneVM, null, "red"));
            var plain = await first.Get<Data.Qubes.Inventory>().GetForDomainAsync("plain");
            Assert.False(await seeds.WriteAsync(plain, CancellationToken.None));
            Assert.DoesNotContain("vdd", first.Get<IHypervisor>().GetXml("plain"));
            Assert.False(File.Exists(Path.Combine(first.PoolDir, "plain", FirstBootSeed.FileName)));

            var work = await first.Get<Data.Qubes.Inventory>().GetForDomainAsync("work");
            var a = FirstBootSeed.Build(work, new FirstBootOptions { PasswordHash = "$6$salt$hash" });
            var b = FirstBootSeed.Build(work, new FirstBootOptions { PasswordHash = "$6$salt$other" });
            Assert.NotEqual(JsonNode.Parse(a.MetaData)!["instance-id"]!.ToString(), JsonNode.Parse(b.MetaData)!["instance-id"]!.ToString());
            var user = JsonNode.Parse(a.UserData["#cloud-config\n".Length..])!["users"]![0]!;
            Assert.Equal(("$6$salt$hash", false), ((string?)user["hashed_passwd"], (bool?)user["lock_passwd"]));
        }
    }
}
