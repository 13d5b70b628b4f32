using System.Xml.Linq;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.IntegrationTests.Estate;

public sealed class DomainDefinitionTests
{
    [Fact]
    public async Task Domains_that_differ_from_the_inventory_are_defined_again_and_the_others_are_left_alone()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var estate = host.Get<EstateMonitor>();
        // Right after start-up every domain already says what the inventory says: nothing to do.
        Assert.Empty(await estate.AlignDomainsAsync());

        var vault = DomainSpecs.From(await host.Get<Inventory>().GetForDomainAsync("vault"));
        var changes = new List<DomainChange>();
        hypervisor.DomainChanged += c => { lock (changes) changes.Add(c); };
        // An older console's domain, or one edited with virsh: other memory and vcpus, no disks.
        hypervisor.Define(vault with { MemoryMiB = vault.MemoryMiB + 1000, VCpus = vault.VCpus + 3, Disks = [] });
        Assert.Equal(vault.MemoryMiB + 1000, MemoryMiB(XDocument.Parse(hypervisor.GetXml("vault")).Root!));
        await Eventually.UntilAsync(estate, () => DefinedCount("vault") == 1, "the event of the edit");

        Assert.Equal(["vault"], await estate.AlignDomainsAsync());

        var xml = XDocument.Parse(hypervisor.GetXml("vault")).Root!;
        Assert.Equal(vault.MemoryMiB, MemoryMiB(xml));
        Assert.Equal(vault.VCpus.ToString(), xml.Element("vcpu")!.Value);
        Assert.Equal(vault.Disks.Select(d => d.Path), xml.Element("devices")!.Elements("disk").Select(d => d.Element("source")!.Attribute("file")!.Value));
        Assert.Equal(new QubeMetadata("AppVM", "black", "debian-13"), hypervisor.GetMetadata("vault"));
        Assert.Empty(await estate.AlignDomainsAsync());
        // libvirt's events come in order: once a marker define's event is in, any define of vault's would be too.
        hypervisor.Define(DomainSpecs.From(await host.Get<Inventory>().GetForDomainAsync("work")));
        await Eventually.UntilAsync(estate, () => DefinedCount("work") == 1, "the marker's event");
        Assert.Equal(2, DefinedCount("vault")); // the edit and the alignment, not the second alignment

        int DefinedCount(string name)
        {
            lock (changes) return changes.Count(c => c.Name == name && c.Kind == DomainChangeKind.Defined);
        }
    }

    private static long MemoryMiB(XElement domain)
    {
        var memory = domain.Element("memory")!;
        var value = long.Parse(memory.Value);
        return (memory.Attribute("unit")?.Value ?? "KiB") switch
        {
            "KiB" => value / 1024,
            "MiB" => value,
            var unit => throw new InvalidOperationException($"unexpected unit {unit}"),
        };
    }
}
