using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace QubesWeb.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class InstantCopies : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "DetachPaused",
                table: "Volumes",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<int>(
                name: "DetachSourceRevision",
                table: "Volumes",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "DetachSourceVolumeId",
                table: "Volumes",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_Volumes_DetachSourceVolumeId",
                table: "Volumes",
                column: "DetachSourceVolumeId");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Volumes_DetachSourceVolumeId",
                table: "Volumes");

            migrationBuilder.DropColumn(
                name: "DetachPaused",
                table: "Volumes");

            migrationBuilder.DropColumn(
                name: "DetachSourceRevision",
                table: "Volumes");

            migrationBuilder.DropColumn(
                name: "DetachSourceVolumeId",
                table: "Volumes");
        }
    }
}
